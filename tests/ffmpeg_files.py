"""Test audio in the formats FFmpeg reads and libsndfile does not (m4a, mp4, webm, aac), written
with PyAV itself: (container, audio codec) per file suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# suffix -> (FFmpeg container format, audio codec)
FFMPEG_FILES = {
    "m4a": ("mp4", "aac"),  # what phones record
    "mp4": ("mp4", "aac"),
    "webm": ("webm", "libopus"),
    "aac": ("adts", "aac"),  # raw AAC (ADTS frames)
}


def write_ffmpeg(path: Path, samples: np.ndarray, rate: int, *, video: bool = False, audio: bool = True) -> Path:
    """Encode ``samples`` ((N,) or (N, C) float32 in [-1, 1]) at ``rate`` Hz into ``path`` (format
    from its suffix, FFMPEG_FILES); ``video`` adds a small video stream before the audio one (an mp4
    from a phone's camera), ``audio=False`` leaves the audio out (a silent film). Returns ``path``."""
    import av

    container_format, codec = FFMPEG_FILES[path.suffix.lstrip(".")]
    frames = samples.reshape(samples.shape[0], -1).astype(np.float32)  # (N, C)
    layout = "mono" if frames.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=container_format) as out:
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
        if audio:
            sound = out.add_stream(codec, rate=48000 if codec == "libopus" else rate, layout=layout)
            resampler = av.AudioResampler(format=sound.codec_context.format.name, layout=layout,
                                          rate=sound.codec_context.sample_rate)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(frames.reshape(1, -1)), format="flt",
                                               layout=layout)
            frame.sample_rate = rate
            for part in [*resampler.resample(frame), *resampler.resample(None)]:
                out.mux(sound.encode(part))
            out.mux(sound.encode(None))
        if picture is not None:
            for i in range(int(frames.shape[0] / rate * 10)):
                image = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 8 % 256, np.uint8), format="rgb24")
                out.mux(picture.encode(image))
            out.mux(picture.encode(None))
    return path
