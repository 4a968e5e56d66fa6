"""SockScope's window. The engine runs in a child process and reports events;
the views here draw the state at the timeline cursor."""
