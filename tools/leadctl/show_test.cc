#include "tools/leadctl/show.h"

#include "gtest/gtest.h"
#include "tools/leadctl/report.h"

namespace leadflow::leadctl {
namespace {

TEST(CellTest, PadsToTheDisplayWidthNotTheByteCount) {
  // 12 characters, 14 bytes: padded to 22 columns and one space.
  const std::string cell = Cell("Zoë Ångström", 22);
  EXPECT_EQ(DisplayWidth(cell), 23u);
  EXPECT_EQ(cell, "Zoë Ångström" + std::string(11, ' '));
}

TEST(CellTest, CutsWholeCharactersByColumns) {
  // Wide characters take two columns each: 2 fit in 5 columns before the "~".
  EXPECT_EQ(Cell("日本語の名前", 6), "日本~  ");
  EXPECT_EQ(Cell("abcdefgh", 4), "abc~ ");
  EXPECT_EQ(Cell("Ångström", 4), "Ång~ ");
  EXPECT_EQ(Cell("", 3), "    ");
}

}  // namespace
}  // namespace leadflow::leadctl
