"""carebridge.storage: arrives with the drop-box issue."""
