"""onebox-backup: dumps of the app's PostgreSQL and Redis, kept on the server and
optionally off-site with restic, and restored in one command.

Part of the server's zipapp (onebox/server/bundle.py): /usr/local/sbin/onebox-backup is a
link to it. Runs as root on the server with nothing but Python 3's standard library and
the docker CLI (restic when an off-site repository is configured).

    onebox-backup dump --label NAME        one backup now (before a release step)
    onebox-backup run                      the timer's job: backup, retention, off-site upload, check
    onebox-backup list                     local and off-site backups
    onebox-backup restore --from local|offsite [--name NAME]
    onebox-backup check                    `restic check` of the off-site repository
    onebox-backup status                   the last run, as the host check reads it

A backup is one directory in backup_dir, named <UTC time>-<label>: postgres.dump
(`pg_dump -Fc`, taken inside the PostgreSQL container over its local socket),
redis.rdb (a BGSAVE snapshot) and manifest.json (sizes and SHA-256 of both). It
appears only when complete. Configuration: /etc/onebox/backup.json (root only);
secrets (restic password, S3 keys): /etc/onebox/backup.env, backup-<app>.env with several apps (root only), handed to
restic through its environment, never on a command line or in the output.
Exit status: 0 done, 1 failed (the reason is the last line on stderr), 2 usage, 130 interrupted.

Modules: config (the configuration), docker (containers of the deps project), sets
(backup sets, labels, retention), dump (taking a backup), postgres and redis (each
service's dump and restore), restic (the off-site copy), restore (choosing a backup and
putting it back), cli (the commands).
"""
