# Bumped by hand (and by the e2e test) to prove that a new build was deployed.
VERSION = "0.1.0"
