"""The server side: the aiohttp application, its jobs and the admin verbs."""
