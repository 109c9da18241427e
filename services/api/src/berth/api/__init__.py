"""berth's HTTP gateway: Run:ai's REST API and a web console, translated into the same request
events and queries every other UI of the bus sends. It holds no domain logic of its own."""
