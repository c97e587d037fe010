"""Where this machine runs: the platform and CI system, from local evidence only.

``model`` holds the pure result types; ``detect`` reads DMI files and environment
variables (never a metadata endpoint, never the network); ``platforms.toml`` is the cited
data file of each platform's outbound-mail policy.
"""
