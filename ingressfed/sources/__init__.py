"""Sources: adapters that observe the world and record it in the Store."""
