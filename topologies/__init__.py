"""Mininet topology scripts: a P4 switch (either target) with client, proxy and targets."""
