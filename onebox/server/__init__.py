"""The server's side of onebox: onebox-release and onebox-backup, standard library only,
shipped to the server as one zipapp (onebox/server/bundle.py) with onebox/contract/."""
