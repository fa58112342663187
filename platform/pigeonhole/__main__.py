from pigeonhole.cli import main

main()
