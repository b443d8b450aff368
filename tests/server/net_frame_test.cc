// Framing: CRC-32C, encoding, and the incremental decoder under arbitrary
// chunking and hostile input.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "net/convert.h"
#include "net/frame.h"

namespace cset::net {
namespace {

std::vector<PeerFrame> sample_frames() {
  std::vector<PeerFrame> frames;
  for (uint64_t i = 0; i < 20; ++i) {
    raft::Message m;
    m.type = raft::MessageType::kAppend;
    m.from = 1;
    m.to = 2;
    m.term = i;
    m.entries.push_back(raft::Entry{i, i + 1, raft::EntryType::kNormal, std::string(i * 37, 'x')});
    frames.push_back(make_raft_frame(m));
    PeerFrame f;
    f.mutable_forward_request()->set_request_id(i);
    f.mutable_forward_request()->set_command(std::string(i, '\0'));
    frames.push_back(f);
  }
  frames.push_back(PeerFrame());  // empty payload: a zero-length frame
  return frames;
}

std::string encode_all(const std::vector<PeerFrame>& frames) {
  std::string out;
  for (const PeerFrame& f : frames)
    EXPECT_TRUE(append_frame(f, kDefaultMaxFrameBytes, &out).is_ok());
  return out;
}

std::vector<PeerFrame> decode_chunked(const std::string& stream, const std::vector<size_t>& cuts,
                                      FrameDecoder* decoder) {
  std::vector<PeerFrame> out;
  size_t pos = 0;
  auto drain = [&] {
    PeerFrame f;
    while (decoder->next(&f) == FrameDecoder::Next::kFrame) out.push_back(f);
  };
  for (size_t cut : cuts) {
    decoder->feed(stream.data() + pos, cut - pos);
    pos = cut;
    drain();
  }
  decoder->feed(stream.data() + pos, stream.size() - pos);
  drain();
  return out;
}

void expect_frames_equal(const std::vector<PeerFrame>& a, const std::vector<PeerFrame>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].SerializeAsString(), b[i].SerializeAsString()) << "frame " << i;
  }
}

TEST(NetFrame, Crc32cKnownValues) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  const std::string s = "hello, peer frames";
  EXPECT_EQ(crc32c_extend(crc32c(s.substr(0, 5)), s.data() + 5, s.size() - 5), crc32c(s));
}

TEST(NetFrame, HeaderLayoutIsBigEndianLengthThenCrc) {
  std::string out;
  ASSERT_TRUE(append_frame_payload("abc", 100, &out).is_ok());
  ASSERT_EQ(out.size(), kFrameHeaderBytes + 3);
  EXPECT_EQ(out.substr(0, 4), std::string("\0\0\0\x03", 4));
  const uint32_t crc = crc32c("abc");
  EXPECT_EQ(static_cast<uint8_t>(out[4]), crc >> 24);
  EXPECT_EQ(static_cast<uint8_t>(out[7]), crc & 0xFF);
  EXPECT_EQ(out.substr(8), "abc");
}

TEST(NetFrame, WholeStreamAtOnce) {
  const std::vector<PeerFrame> frames = sample_frames();
  FrameDecoder decoder;
  expect_frames_equal(frames, decode_chunked(encode_all(frames), {}, &decoder));
  EXPECT_FALSE(decoder.failed());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(NetFrame, OneByteAtATime) {
  const std::vector<PeerFrame> frames = sample_frames();
  const std::string stream = encode_all(frames);
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  FrameDecoder decoder;
  expect_frames_equal(frames, decode_chunked(stream, cuts, &decoder));
}

TEST(NetFrame, RandomChunkings) {
  const std::vector<PeerFrame> frames = sample_frames();
  const std::string stream = encode_all(frames);
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    size_t pos = 0;
    while (true) {
      pos += 1 + rng() % 300;
      if (pos >= stream.size()) break;
      cuts.push_back(pos);
    }
    FrameDecoder decoder;
    expect_frames_equal(frames, decode_chunked(stream, cuts, &decoder));
    EXPECT_FALSE(decoder.failed());
  }
}

TEST(NetFrame, EncodingOverTheLimitIsTooBigAndAppendsNothing) {
  PeerFrame f;
  f.mutable_forward_request()->set_command(std::string(1000, 'x'));
  std::string out = "keep";
  Status s = append_frame(f, 100, &out);
  EXPECT_EQ(s.code(), Code::kTooBig);
  EXPECT_EQ(out, "keep");
  EXPECT_EQ(append_frame_payload(std::string(101, 'x'), 100, &out).code(), Code::kTooBig);
  EXPECT_EQ(out, "keep");
}

TEST(NetFrame, OversizedLengthFailsFromTheHeaderAlone) {
  FrameDecoder decoder(1024);
  // Length 0xFFFFFFFF: refused after 8 bytes, before anything is allocated.
  const std::string header("\xff\xff\xff\xff\0\0\0\0", 8);
  decoder.feed(header);
  PeerFrame f;
  EXPECT_EQ(decoder.next(&f), FrameDecoder::Next::kError);
  EXPECT_EQ(decoder.error().code(), Code::kTooBig);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  // Sticky: later input is ignored.
  std::string good;
  ASSERT_TRUE(append_frame(PeerFrame(), 1024, &good).is_ok());
  decoder.feed(good);
  EXPECT_EQ(decoder.next(&f), FrameDecoder::Next::kError);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(NetFrame, LengthJustOverTheLimitFails) {
  FrameDecoder decoder(1024);
  std::string frame;
  ASSERT_TRUE(append_frame_payload(std::string(1025, 'a'), 2048, &frame).is_ok());
  decoder.feed(frame.substr(0, 8));
  std::string_view payload;
  EXPECT_EQ(decoder.next_payload(&payload), FrameDecoder::Next::kError);
  EXPECT_EQ(decoder.error().code(), Code::kTooBig);

  FrameDecoder exact(1025);
  exact.feed(frame);
  EXPECT_EQ(exact.next_payload(&payload), FrameDecoder::Next::kFrame);
  EXPECT_EQ(payload.size(), 1025u);
}

TEST(NetFrame, EveryFlippedPayloadByteIsCaught) {
  std::string frame;
  PeerFrame f;
  f.mutable_forward_request()->set_request_id(12345);
  f.mutable_forward_request()->set_command("SADD k m");
  ASSERT_TRUE(append_frame(f, kDefaultMaxFrameBytes, &frame).is_ok());
  for (size_t i = 4; i < frame.size(); ++i) {  // crc and payload bytes
    std::string bad = frame;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    FrameDecoder decoder;
    decoder.feed(bad);
    PeerFrame out;
    EXPECT_EQ(decoder.next(&out), FrameDecoder::Next::kError) << "byte " << i;
    EXPECT_EQ(decoder.error().code(), Code::kCorrupt);
  }
}

TEST(NetFrame, UnparsableProtobufWithAValidChecksumIsCorrupt) {
  std::string frame;
  // Field 0 is not a valid tag; 0xFF... is an overlong varint tag.
  ASSERT_TRUE(append_frame_payload(std::string("\x00\x01", 2), 100, &frame).is_ok());
  FrameDecoder decoder;
  decoder.feed(frame);
  PeerFrame out;
  EXPECT_EQ(decoder.next(&out), FrameDecoder::Next::kError);
  EXPECT_EQ(decoder.error().code(), Code::kCorrupt);

  std::string frame2;
  ASSERT_TRUE(append_frame_payload(std::string(12, '\xff'), 100, &frame2).is_ok());
  FrameDecoder decoder2;
  decoder2.feed(frame2);
  EXPECT_EQ(decoder2.next(&out), FrameDecoder::Next::kError);
}

TEST(NetFrame, TruncatedStreamNeedsMoreAndKeepsOnlyWhatWasFed) {
  std::string frame;
  PeerFrame f;
  f.mutable_forward_reply()->set_message(std::string(5000, 'm'));
  ASSERT_TRUE(append_frame(f, kDefaultMaxFrameBytes, &frame).is_ok());
  FrameDecoder decoder;
  decoder.feed(frame.substr(0, frame.size() - 1));
  PeerFrame out;
  EXPECT_EQ(decoder.next(&out), FrameDecoder::Next::kNeedMore);
  EXPECT_EQ(decoder.buffered_bytes(), frame.size() - 1);
  decoder.feed(frame.substr(frame.size() - 1));
  EXPECT_EQ(decoder.next(&out), FrameDecoder::Next::kFrame);
  EXPECT_EQ(out.forward_reply().message().size(), 5000u);
  EXPECT_EQ(decoder.next(&out), FrameDecoder::Next::kNeedMore);
}

TEST(NetFrame, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(11);
  size_t errors = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string garbage(rng() % 200, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    FrameDecoder decoder(4096);
    decoder.feed(garbage);
    PeerFrame out;
    FrameDecoder::Next n;
    int frames = 0;
    while ((n = decoder.next(&out)) == FrameDecoder::Next::kFrame) ++frames;
    EXPECT_LE(decoder.buffered_bytes(), garbage.size());
    if (n == FrameDecoder::Next::kError) ++errors;
  }
  EXPECT_GT(errors, 1000u);  // random lengths are mostly over 4096
}

}  // namespace
}  // namespace cset::net
