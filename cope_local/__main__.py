from cope_local.cli import main

main()
