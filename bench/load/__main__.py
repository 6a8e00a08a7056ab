from bench.load.runner import main

main()
