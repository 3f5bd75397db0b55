-- Kiln "vibes" collection rules: shared settings.
--
-- tup reads every Tuprules.lua from the project root down to a directory before that
-- directory's Tupfile.lua (or, when it has none, the root's Tupdefault.lua), so this runs first
-- everywhere. tup.getcwd() here is the path from the directory being parsed back to the root,
-- e.g. "../.." in artist/album: the helpers (vibes-*, in the root beside this file, so that no
-- folder of theirs is mirrored, empty, into every variant) are found through it.
VIBES = tup.getcwd()

-- What each encoder (CONFIG_ENCODER) writes, and the config variable holding its flags.
ENCODERS = {
  flac    = { ext = 'flac', flags = 'FLAC_FLAGS' },
  lame    = { ext = 'mp3',  flags = 'LAME_FLAGS' },
  oggenc  = { ext = 'ogg',  flags = 'OGGENC_FLAGS' },
  opusenc = { ext = 'opus', flags = 'OPUSENC_FLAGS' },
}

-- Quotes a string for /bin/sh, which runs tup's commands.
function shquote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The profile's encoder, its output extension and its flags, or a parse error that says what
-- is wrong (tup then stops before running anything).
function profile()
  local encoder = tup.getconfig('ENCODER')
  if encoder == '' then
    error('vibes: CONFIG_ENCODER is not set. Build in a variant: create build-<profile>/tup.config '
      .. '(see examples/vibes/profiles) before running tup.')
  end
  local e = ENCODERS[encoder]
  if e == nil then
    error('vibes: CONFIG_ENCODER=' .. encoder .. ' is not one of flac, lame, oggenc, opusenc.')
  end
  return encoder, e.ext, tup.getconfig(e.flags)
end
