"""Quality at equal epochs: our recipes against the peers' and against raw pixels."""
