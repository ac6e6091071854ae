"""Messages to people: text messages (SMS) through a gateway interface."""
