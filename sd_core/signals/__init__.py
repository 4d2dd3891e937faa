"""Signals: reading and writing EEG files, channel names, resampling, windows, synthetic EEG.

``edf``                EDF headers (checked before MNE opens a file) and EDF export
``channels``           channel-name cleaning, 10–20 aliases, picking channels by name
``resample``           the original's decimation (or polyphase) to the processing rate
``decimation_filter``  scipy's decimation filter, designed once per machine and cached
``windows``            cutting a recording into the windows that become images
``eeg_model``          realistic synthetic EEG for the demo data sets: subjects, states, recordings
``artefacts``          its electrodes and artefacts (blinks, eye movements, muscle, pops, chewing)
``seizures``           its patient-specific seizures
``noise``              Gaussian noise of a given spectrum, the model's building block
``synthetic``          the simple synthetic EEG of earlier demos (1/f, rhythms, discharges)

Nothing here knows about plugins, configuration or run folders.
"""
