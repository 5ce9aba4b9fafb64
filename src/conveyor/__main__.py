from conveyor.cli.entry import main

main()
