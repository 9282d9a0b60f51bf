from wellnest.cli import main

main()
