from portprobe.cli import main

main()
