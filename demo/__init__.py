"""The demo campaign behind ``manage.py create_demo``: the top app, which uses every
other app's services as a user would."""
