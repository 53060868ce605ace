from schoolsync.app.cli import main

main()
