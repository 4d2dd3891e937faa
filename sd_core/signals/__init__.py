"""Signals: reading and writing EEG files, channel names, resampling, windows, synthetic EEG.

``edf``                EDF headers (checked before MNE opens a file) and EDF export
``channels``           channel-name cleaning, 10–20 aliases, picking channels by name
``resample``           the original's decimation (or polyphase) to the processing rate
``decimation_filter``  scipy's decimation filter, designed once per machine and cached
``windows``            cutting a recording into the windows that become images
``synthetic``          synthetic EEG for the embedded demo data sets

Nothing here knows about plugins, configuration or run folders.
"""
