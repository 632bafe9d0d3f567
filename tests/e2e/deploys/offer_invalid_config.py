"""Test-only deploy: offer a daemon an invalid config through checked_file, which must
refuse it and keep the working one. ONEBOX_TEST_DEST and ONEBOX_TEST_CHECK choose which."""

import os

from onebox.operations import checked_file

checked_file(
    name="Offer an invalid config.",
    dest=os.environ["ONEBOX_TEST_DEST"],
    content="this line is not valid configuration\n",
    check=os.environ["ONEBOX_TEST_CHECK"],
)
