"""The CLI's subcommands (render, eval, bench, models): each parses its own arguments into a
small dataclass and calls the public API.
"""
