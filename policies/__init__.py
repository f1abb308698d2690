"""carebridge.policies: arrives with the drop-box issue."""
