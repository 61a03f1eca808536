"""The simulated platform behind `mltop --demo`, served on loopback; the tests use the same servers."""
