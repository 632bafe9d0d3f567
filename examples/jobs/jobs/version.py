# Bumped by hand (and by tests) to prove that a new build was deployed.
VERSION = "0.1.0"
