from crystallize.cli import main

raise SystemExit(main())
