"""`sec serve`: the console's web pages and JSON API over the same CLI operations (see app.create_app)."""
