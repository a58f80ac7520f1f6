"""The forum in a browser: server-rendered pages over the other services' public HTTP APIs."""
