"""The release engine, in explicit phases. Every release, rollback, recovery and heal
takes the same path:

    expand deps -> image -> release record -> [pre-release dump, release step] -> start in
    the idle slot -> health gate -> nginx switch -> drain the old slot -> processes ->
    contract deps -> prune (pruning.py)

Until the switch, a failure stops the new slot and leaves the live release and everything
it uses as they were. The state records each phase, so an interrupted run (a reboot, a
kill) is finished or undone by the next (recover)."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from onebox import contract
from onebox.server import basics, deps, docker, docker_state, events, images, pruning, secret_files, slot_project, slots, switch
from onebox.server.basics import OneboxError
from onebox.server.model import App, ReleaseRecord, Transition, now


def log(message: str) -> None:
    basics.log(message, timed=True)


# --- phases -------------------------------------------------------------------------------------

def new_release(app: App, image: str) -> ReleaseRecord:
    """The release's directory: compose file, environment, secrets, overrides, record."""
    created = datetime.now(UTC).replace(microsecond=0)
    inputs = app.app_inputs
    while (app.releases_dir / f"{created:%Y%m%d-%H%M%S}-{inputs[:6]}").exists():
        created += timedelta(seconds=1)  # the same inputs again within a second (a secret changed)
    record = ReleaseRecord(id=f"{created:%Y%m%d-%H%M%S}-{inputs[:6]}", image=image,
                           created=created.strftime("%Y-%m-%dT%H:%M:%SZ"), source=app.spec.release.source_label,
                           inputs=inputs, secrets=secret_files.fingerprint(app),
                           processes_started=bool(app.spec.release.processes))
    release_dir = app.releases_dir / record.id
    release_dir.mkdir(parents=True, mode=0o700)
    shutil.copy(app.layout.app_compose, release_dir / "compose.yaml")
    env = secret_files.render(app.spec.release.env, secret_files.placeholders(app, record.id))
    try:
        env_text = contract.env_file_text(env)  # quoted: compose would read `$`, `#` and quotes in it
    except ValueError as error:
        raise OneboxError(str(error)) from None
    basics.write_atomic(release_dir / contract.compose.RELEASE_ENV_FILE, env_text)
    secret_files.write_release_secrets(app, release_dir, record.id)
    override = images.release_override(app, image)
    if override:
        basics.write_json(release_dir / "override.json", override)
    basics.write_json(release_dir / "release.json", record.__dict__, mode=0o644)
    return record


def release_step(app: App, record: ReleaseRecord, slot: str, backup_command: str = contract.BACKUP_COMMAND) -> None:
    """The pre-release dump, then the release step (migrations) in the new image, once."""
    step = app.spec.release.release_command
    if not step:
        return
    if app.spec.backup_before_release and Path(backup_command).exists():
        log(f"dump before the release step ({backup_command} dump --label release-{record.id})")
        if not basics.run([backup_command, "--config", app.files.backup_config, "dump", "--label",
                           f"release-{record.id}"], capture=False, check=False).ok:
            raise OneboxError("the pre-release backup failed; the running version was left as it was")
    log(f"release step: {' '.join(step)}")
    # Named, so that a step past its time can be removed: killing `compose run` leaves its container
    # running (and `--rm` is done by compose itself, which is gone).
    name = f"{app.project(slot)}-release-{record.id}"
    timeout = app.spec.release_step_timeout
    try:
        done = slot_project.compose(app, record, slot, "run", "--rm", "--no-deps", "-T", "--name", name,
                                    contract.compose.API_SERVICE, *step, check=False, timeout=timeout)
    except basics.CommandTimeout:
        # Killed at once: PostgreSQL rolls back what the step had not committed when its connection drops.
        basics.run(docker.rm_force(name), check=False)
        raise basics.over_time(f"the release step ({' '.join(step)})", "release_step_timeout", timeout,
                               stopped="its container was killed and removed") from None
    if not done.ok:
        raise OneboxError("the release step failed (e.g. the database migration); the running version was left as it was")


def set_phase(app: App, phase: str) -> None:
    state = app.load_state()
    assert state.transition is not None
    state.transition.phase = phase
    app.save_state(state)


def switch_to(app: App, record: ReleaseRecord, run_release_step: bool) -> None:
    """Start `record` in the idle slot, gate it on health, point nginx at it, retire the old slot."""
    state = app.load_state()
    new_slot = contract.other_slot(state.slot if state.live else None)
    slots.stop(app, new_slot, app.record(state.slots.get(new_slot)))  # an abandoned attempt goes first
    state.slots[new_slot] = record.id
    state.transition = Transition(release=record.id, slot=new_slot, phase="starting", since=now(),
                                  kind="release" if run_release_step else "rollback")
    app.save_state(state)
    try:
        if run_release_step:
            release_step(app, record, new_slot)
        slots.start_api(app, record, new_slot)
        slots.wait_healthy(app, record, new_slot)
    except (OneboxError, KeyboardInterrupt):
        abandon(app, new_slot, record)
        raise
    healthy_at = time.monotonic()
    log(f"{record.id} is healthy in slot {new_slot}; switching nginx to it")
    set_phase(app, "switching")
    try:
        switch.point_nginx_at(app, new_slot)
    except OneboxError:
        if state.live and state.slot:  # nginx back on the live slot, whatever the file says now
            switch.point_nginx_at(app, state.slot)
        abandon(app, new_slot, record)
        raise
    finish_switch(app, record, new_slot, healthy_at)


def abandon(app: App, slot: str, record: ReleaseRecord | None) -> None:
    slots.stop(app, slot, record)
    state = app.load_state()
    state.transition = None
    state.slots.pop(slot, None)
    app.save_state(state)


def finish_switch(app: App, record: ReleaseRecord, new_slot: str, healthy_at: float | None = None) -> None:
    """nginx points at the new slot: it is live. Drain and stop the old one, start the processes."""
    state = app.load_state()
    old_slot = contract.other_slot(new_slot)
    old_record = app.record(state.slots.get(old_slot)) or app.record(state.live if state.slot == old_slot else None)
    kind = state.transition.kind if state.transition else "release"
    changed = state.live != record.id  # not a recovery finishing a switch that had gone live already
    state.went_live(record.id, new_slot)
    state.transition = Transition(release=record.id, slot=new_slot, phase="draining", since=now(), kind=kind)
    app.save_state(state)
    if changed:  # marked when nginx serves it: where a graph's line changes
        events.record_quietly(app, kind, record.id)
    started = healthy_at or time.monotonic()
    if old_record:
        switch.drain(app, old_slot)
    slots.stop(app, old_slot, old_record)
    log(f"the previous version stopped {time.monotonic() - started:.1f} s after the new one was healthy")
    state = app.load_state()
    state.transition, state.slots = None, {new_slot: record.id}
    app.save_state(state)
    if app.spec.release.processes:
        slots.start_processes(app, record, new_slot)


def recover(app: App) -> None:
    """A release stopped halfway (the server rebooted, the tool was killed): finish or undo it.
    One that was still starting never passed its health gate: undone. One that was being
    switched is live if nginx's upstream already names its slot; one that was draining is live."""
    state = app.load_state()
    transition = state.transition
    if transition is None:
        return
    record = app.record(transition.release)
    switched = transition.phase == "draining" or (
        transition.phase == "switching" and switch.live_port(app) == app.port(transition.slot))
    if record and switched:
        log(f"finishing the interrupted switch to {record.id} (it was {transition.phase})")
        slots.start_api(app, record, transition.slot)
        if transition.phase == "switching":
            switch.resume(app)  # the file may have been written and nginx or the kernel never told
        finish_switch(app, record, transition.slot)
        return
    log(f"undoing the interrupted release {transition.release} (it was {transition.phase}): the live version stays")
    abandon(app, transition.slot, record)
    if transition.release not in {item["id"] for item in state.history}:
        shutil.rmtree(app.releases_dir / transition.release, ignore_errors=True)  # it never served


def heal(app: App) -> list[str]:
    """The live release as declared: its containers running, nginx pointing at it."""
    state, record = app.live_record()
    slot = state.slot
    assert slot is not None
    fixed = []
    running = slots.containers(app, slot)
    expected = app.slot_services(record)
    down = {c.service for c in running if c.state != "running"} | (expected - {c.service for c in running})
    if down:
        fixed.append(f"started {', '.join(sorted(down))} of {record.id}")
        slots.start_api(app, record, slot)
        slots.wait_healthy(app, record, slot)
        if record.processes_started:
            slots.start_processes(app, record, slot)
    if not switch.points_at(app, slot):
        fixed.append(f"pointed nginx at slot {slot}")
        switch.point_nginx_at(app, slot)
    return fixed


# --- commands -----------------------------------------------------------------------------------

def up_to_date(app: App, record: ReleaseRecord | None) -> bool:
    return record is not None and record.inputs == app.app_inputs and record.secrets == secret_files.fingerprint(app)


def contract_deps(app: App) -> None:
    """The dependencies exactly as declared, once nothing at stake still needs what goes."""
    state = app.load_state()
    leaving = deps.removed(app)
    if state.deps == app.deps_inputs and not leaving:
        return
    if leaving:
        log(f"the live release no longer uses {', '.join(leaving)}: stopping it (its data volume stays)")
    deps.contract(app)
    state = app.load_state()
    state.deps = app.deps_inputs
    app.save_state(state)


def apply(app: App) -> None:
    recover(app)
    state = app.load_state()
    live = app.record(state.live)
    if live is None:
        deps.contract(app)  # nothing serves yet: nothing to protect
    else:
        deps.expand(app)
    if up_to_date(app, live):
        assert live is not None
        fixed = heal(app)
        contract_deps(app)
        log("; ".join(fixed) if fixed else f"{live.id} is live and healthy; nothing to do")
        return
    image = images.ensure_image(app)
    record = new_release(app, image)
    log(f"new release {record.id} ({record.source})")
    try:
        switch_to(app, record, run_release_step=True)
    except (OneboxError, KeyboardInterrupt):
        if app.load_state().live != record.id:  # it never served: nothing to roll back to, nothing to keep
            shutil.rmtree(app.releases_dir / record.id, ignore_errors=True)
        raise
    contract_deps(app)
    pruning.prune(app)
    log(f"{record.id} is live")


def rollback(app: App, target: str | None) -> None:
    recover(app)
    state = app.load_state()
    target = target or state.previous
    if not target:
        raise OneboxError("there is no previous release to roll back to (see `onebox releases`)")
    contract.check_release_id(target)
    record = app.record(target)
    if record is None:
        raise OneboxError(f"release {target!r} is not kept on this server (see `onebox releases`)")
    if target == state.live:
        log(f"{target} is already live")
        return
    if not docker_state.image_present(record.image):
        raise OneboxError(f"the image of {target} ({record.image}) is gone; deploy it again instead")
    log(f"rolling back to {target}; database migrations are NOT reversed (expand/contract, see README)")
    switch_to(app, record, run_release_step=False)
    log(f"{target} is live")

