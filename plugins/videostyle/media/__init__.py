"""ffmpeg and ffprobe, called with argv lists and -nostdin; their stderr goes into every error."""
