"""Temporary probe (not committed): where does a stalled WebSocket handshake go?"""
import time

from onebox.verify import edge


def test_probe_websocket_handshakes(deployed, root_ca) -> None:
    s = deployed.settings
    deployed.ssh("sed -i 's/^error_log .*/error_log \\/var\\/log\\/nginx\\/error.log info;/' /etc/nginx/nginx.conf; "
                 "grep -n error_log /etc/nginx/nginx.conf; nginx -t && systemctl reload nginx")
    time.sleep(2)
    start = time.time()
    results = []
    for round_ in range(3):
        held = []
        for i in range(40):
            t0 = time.monotonic()
            try:
                ws = edge.websocket(deployed.ip, deployed.domain, f"/ws/echo?probe={round_}-{i}", root_ca)
                held.append(ws)
                results.append((round_, i, "open", time.monotonic() - t0))
            except Exception as error:  # noqa: BLE001
                results.append((round_, i, f"{type(error).__name__}: {error}", time.monotonic() - t0))
            time.sleep(1.1 / s.rate_limit_rps)
        for ws in held:
            ws.close()
        time.sleep(3)
    bad = [r for r in results if r[2] != "open" or r[3] > 2]
    print("\nPROBE results:", len(results), "bad:", bad)
    print("PROBE access:", deployed.ssh("grep 'probe=' /var/log/nginx/access.log | awk '{print $9}' | sort | uniq -c").stdout)
    for r in bad:
        print("PROBE line:", deployed.ssh(f"grep 'probe={r[0]}-{r[1]} ' /var/log/nginx/access.log").stdout)
    print("PROBE error log:", deployed.ssh("tail -n 60 /var/log/nginx/error.log | grep -v 'limiting conn'").stdout[-6000:])
    print("PROBE api log:", deployed.ssh("docker logs --since 10m $(docker ps -q --filter label=com.docker.compose.service=api | head -1) 2>&1 | grep -c probe").stdout)
    print(f"PROBE took {time.time() - start:.0f} s")
