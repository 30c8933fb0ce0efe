; Foundry Desk's Windows installer, for Inno Setup 6.3 or later.
;
;     iscc -DAppVersion=<desktop/__init__.py __version__> installer\windows\foundry-desk.iss
;
; `bash installer/build.sh exe` runs exactly that (installer/windows/build.sh) once PyInstaller has
; built build\dist\foundry-desk\: foundry-desk.exe (windowed), foundry-desk-cli.exe (console) and
; _internal\. It writes build\dist\foundry-desk-<version>-windows-x64-setup.exe.
;
; - Installs for the current user by default, without administrator rights
;   (%LOCALAPPDATA%\Programs\Foundry Desk); the first dialog, or /ALLUSERS, installs for everyone.
; - Start menu entry; a desktop shortcut and "start when I sign in" on request. The latter is the
;   Run value the app's own tray menu writes (desktop/shell/autostart.py), so either can turn it off.
; - Needs the Microsoft Edge WebView2 Runtime for the window (part of Windows 11). When it is
;   missing, Setup says where to get it; if MicrosoftEdgeWebview2Setup.exe (Microsoft's Evergreen
;   Bootstrapper) lies beside this script at build time, Setup carries it and runs it instead.
; - Upgrading or uninstalling first asks the running app to quit (`foundry-desk.exe --quit`) and
;   waits for it, so that no file is in use when it is replaced or removed.
; - The uninstaller removes the program, its shortcuts and the Run value, and keeps what belongs to
;   the user: settings, chats, downloaded models and logs in %LOCALAPPDATA%\foundry-desk (its last
;   page says so).

#ifndef AppVersion
  #error Pass the app's version: iscc -DAppVersion=<__version__ of desktop/__init__.py>
#endif

#define AppName "Foundry Desk"
#define AppExe "foundry-desk.exe"
#define Root AddBackslash(SourcePath) + "..\.."
#define Bundle Root + "\build\dist\foundry-desk"
#define WebView2Setup "MicrosoftEdgeWebview2Setup.exe"

#ifnexist Bundle + "\foundry-desk-cli.exe"
  #error build\dist\foundry-desk is not a Windows build of the app: run `bash installer/build.sh exe`
#endif
#ifexist AddBackslash(SourcePath) + WebView2Setup
  #define BundleWebView2
#endif

[Setup]
; The app's identity for upgrades and the uninstaller: never change it.
AppId={{5C6B7DFC-CE6A-453A-821A-7A6649BA9F80}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
; The Run value and the user's data are per user whatever the install mode (the app writes HKCU
; itself); an all-users install writes the Run value of the user who installs.
UsedUserAreasWarning=no
; Upgrades never turn start-at-login back on after the user turned it off in the tray.
UsePreviousTasks=no
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
WizardStyle=modern
SetupIconFile={#Root}\resources\icons\app.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
OutputDir={#Root}\build\dist
OutputBaseFilename=foundry-desk-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
; After `--quit` (PrepareToInstall below), the Restart Manager catches what still holds a file: an
; app of another user, or one that did not quit. Python's extension modules are .pyd files.
CloseApplications=yes
CloseApplicationsFilter=*.exe,*.dll,*.pyd
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Messages]
UninstalledAll=%1 was removed from your computer.%n%nYour settings, chats, downloaded models and logs are kept in %LOCALAPPDATA%\foundry-desk. Delete that folder to remove them too.

[CustomMessages]
StartAtLogin=&Start %1 when I sign in
WebView2Missing=%1 shows its window with the Microsoft Edge WebView2 Runtime, which is not installed on this computer.%n%nInstall it from Microsoft (free): %2%n(the "Evergreen Bootstrapper" on https://developer.microsoft.com/microsoft-edge/webview2/), then start %1. Until then the tray icon and the model endpoint work, but the window does not open.%n%nContinue installing %1?
InstallingWebView2=Installing the Microsoft Edge WebView2 Runtime...
WebView2InstallFailed=The Microsoft Edge WebView2 Runtime, which %1 needs for its window, could not be installed.%n%nInstall it from Microsoft (free): %2
AppStillRunning=%1 is running and did not quit. Quit it (its tray icon, Quit), then run Setup again.

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "startatlogin"; Description: "{cm:StartAtLogin,{#AppName}}"; GroupDescription: "{cm:AutoStartProgramGroupDescription}"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the whole bundle: modules the new version no longer has must not stay behind.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
#ifdef BundleWebView2
Source: "{#WebView2Setup}"; Flags: dontcopy noencryption
#endif

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Private AI chat on your computer"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; Start at login: HKCU\...\Run, value FoundryDesk, as desktop/shell/autostart.py writes it. The first
; entry creates nothing but makes the uninstaller delete the value however it was set (here, or by
; the tray menu later); the second sets it when the task is chosen.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: none; ValueName: "FoundryDesk"; Flags: uninsdeletevalue
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "FoundryDesk"; ValueData: """{app}\{#AppExe}"" --background"; Tasks: startatlogin

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallRun]
; The uninstaller's first step, before any file is removed: the running app (of this user) quits
; as if Quit were chosen in its tray menu, and the uninstaller waits until it has.
Filename: "{app}\{#AppExe}"; Parameters: "--quit"; Flags: runhidden waituntilterminated skipifdoesntexist; RunOnceId: "QuitFoundryDesk"

[Code]
const
  WebView2ClientKey = 'SOFTWARE\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}';
  WebView2Download = 'https://go.microsoft.com/fwlink/p/?LinkId=2124703';

// Microsoft's documented check for the Evergreen WebView2 Runtime ("Distribute your app and the
// WebView2 Runtime"): a "pv" value under its client key that is neither empty nor 0.0.0.0.
function WebView2VersionFound(const RootKey: Integer): Boolean;
var
  Version: String;
begin
  Result := RegQueryStringValue(RootKey, WebView2ClientKey, 'pv', Version) and
    (Version <> '') and (Version <> '0.0.0.0');
end;

// Installed per machine (the key lives in the 32-bit view of HKLM) or for this user.
function WebView2Installed(): Boolean;
begin
  Result := WebView2VersionFound(HKLM32) or WebView2VersionFound(HKCU);
end;

// The running app of this user quits as if Quit were chosen in its tray menu; `--quit` waits for
// it and exits 0 once none runs. True when nothing of ours is left running (or none was).
function QuitRunningApp(): Boolean;
var
  AppExe: String;
  ResultCode: Integer;
begin
  Result := True;
  AppExe := ExpandConstant('{app}\{#AppExe}');
  if not FileExists(AppExe) then
    Exit;
  Log('Asking a running Foundry Desk to quit: ' + AppExe + ' --quit');
  if Exec(AppExe, '--quit', '', SW_HIDE, ewWaitUntilTerminated, ResultCode) then
    Result := ResultCode = 0
  else
    Log('Could not run it (' + SysErrorMessage(ResultCode) + '); the Restart Manager check follows.');
end;

function InitializeSetup(): Boolean;
begin
  Result := True;
#ifndef BundleWebView2
  if not WebView2Installed() then
    Result := SuppressibleMsgBox(
      FmtMessage(CustomMessage('WebView2Missing'), ['{#AppName}', WebView2Download]),
      mbConfirmation, MB_YESNO, IDYES) = IDYES;
#endif
end;

// Before any file is replaced (an upgrade), the old version quits.
function PrepareToInstall(var NeedsRestart: Boolean): String;
begin
  Result := '';
  if not QuitRunningApp() then
    Result := FmtMessage(CustomMessage('AppStillRunning'), ['{#AppName}']);
end;

#ifdef BundleWebView2
// Microsoft's bootstrapper: per user when Setup runs without administrator rights, else per machine.
procedure InstallWebView2();
var
  ResultCode: Integer;
begin
  WizardForm.StatusLabel.Caption := CustomMessage('InstallingWebView2');
  ExtractTemporaryFile('{#WebView2Setup}');
  if not Exec(ExpandConstant('{tmp}\{#WebView2Setup}'), '/silent /install', '', SW_HIDE,
              ewWaitUntilTerminated, ResultCode) then
    Log('Could not run the WebView2 bootstrapper: ' + SysErrorMessage(ResultCode))
  else
    Log('The WebView2 bootstrapper exited with ' + IntToStr(ResultCode));
  if not WebView2Installed() then
    SuppressibleMsgBox(
      FmtMessage(CustomMessage('WebView2InstallFailed'), ['{#AppName}', WebView2Download]),
      mbError, MB_OK, IDOK);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and not WebView2Installed() then
    InstallWebView2();
end;
#endif
