"""modelscope.outputs.OutputKeys, the one key the TTS pipeline returns."""


class OutputKeys:
    OUTPUT_WAV = "output_wav"
