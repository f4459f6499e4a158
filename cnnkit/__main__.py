from cnnkit.cli import main
from cnnkit.worker import exit_now

exit_now(main())  # a command that trained ends without TensorFlow's slow teardown
