"""portprobe: can this machine send mail on port 25, and if not, who is stopping it?"""

__version__ = "0.1.0"
