"""The convfuzz subcommands, grouped by what they work on."""
