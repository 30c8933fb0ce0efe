"""The desktop shell: what the user sees and touches of the app outside its pages.

`tray` (the icon and its menu), `window` (the native window, in a child process of its own),
`notify` (notifications), `autostart` (start at login), `instance` (one app per user: a second
launch hands over to the first), `platform` (the platform's desktop: tray backend, toolkit,
opening files and links, the clipboard). It knows nothing of the services: `desktop.app` wires it
to the service stack.
"""
