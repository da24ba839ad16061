from portlab.cli import main

main()
