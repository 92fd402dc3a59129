"""Sessions: accepting messages into the inbox and running each session's turns in order."""
