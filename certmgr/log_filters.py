"""Log filters of settings.LOGGING (README, "Configuration": CERTMGR_LOG_VERBOSE)."""

import logging


class BrokerNoHostnameFilter(logging.Filter):
    """Drops kombu's "No hostname was supplied. Reverting to default 'localhost'" warning,
    logged whenever a connection to a broker URL without a host is made: the embedded
    filesystem:// broker has no host, and each task queued by the web process said so."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No hostname was supplied.")
