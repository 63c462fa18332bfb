"""Display sources: programs whose screens the server shows (an X server), run as Trio tasks
that draw through the same display API an application uses."""
