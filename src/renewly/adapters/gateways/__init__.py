"""Payment gateways: the port Renewly's services call, and its adapters."""
