from face_sentiment.cli import main

raise SystemExit(main())
