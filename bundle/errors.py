"""The one error type of the bundle tool: every refusal and failure the CLI prints as one line."""


class BundleError(Exception):
    """A refusal or failure the CLI prints as one line (`bundle: <message>`)."""
