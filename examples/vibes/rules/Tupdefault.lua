-- Kiln "vibes" collection rules, applied by tup to every directory without its own Tupfile.
--
-- In each directory of the collection (inside each variant build-<profile>/):
--   * every track NN-slug.wav becomes NN-slug.<ext>, encoded by vibes-encode, which reads the
--     track's tags from the tag files above it (tup sees those reads and records them as the
--     command's inputs, so editing a tag file rebuilds exactly the tracks it applies to);
--   * a directory holding an ALBUM tag file also gets <dirname>.m3u listing its tracks and those
--     of its disc folders (subfolders holding a DISCNUMBER file), in order.
-- Command lines contain only the encoder, its flags, file names and the folder's number of tracks
-- (TRACKTOTAL): they stay the same while the sources do, so an unchanged collection never
-- rebuilds, and adding a track re-encodes its folder's tracks with the new total.

local tracks = tup.glob('*.wav')
local is_album = #tup.glob('ALBUM') > 0
if #tracks == 0 and not is_album then
  return
end

local encoder, ext, flags = profile()

-- The playlist rule comes from a run-script, which may list this directory (to find the disc
-- folders) and which tup re-runs when this directory's entries change. It must run before the
-- encode rules exist: a run-script must not see generated files.
if is_album then
  tup.run('bash ' .. VIBES .. '/vibes-playlist-rule ' .. ext .. ' ' .. VIBES)
end

for _, wav in ipairs(tracks) do
  tup.definerule{
    inputs = { wav },
    command = '^ ' .. encoder .. ' %f^ bash ' .. VIBES .. '/vibes-encode ' .. encoder .. ' '
      .. shquote(flags) .. ' %f %o ' .. #tracks,
    outputs = { '%B.' .. ext },
  }
end
