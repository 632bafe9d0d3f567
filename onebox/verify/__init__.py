"""Live checks of a deployed server, shared by the tests and the smoke run."""
