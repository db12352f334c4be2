from detectkd.cli import main

raise SystemExit(main())
