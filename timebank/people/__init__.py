"""People who sign in to the pages: accounts, passwords, one-time sign-in links, sessions."""
