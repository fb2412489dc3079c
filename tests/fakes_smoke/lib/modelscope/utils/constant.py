"""modelscope.utils.constant.Tasks (the text-to-speech task name)."""


class Tasks:
    text_to_speech = "text-to-speech"
