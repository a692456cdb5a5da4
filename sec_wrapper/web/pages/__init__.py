"""The console's pages: the vendor console's tabs, server-rendered, each acting through the operation service."""
